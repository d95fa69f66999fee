output "listener_arn" {
  description = "ARN of the internal listener (API Gateway's integration target, services' rules)."
  value       = aws_lb_listener.http.arn
}

output "arn_suffix" {
  description = "ALB ARN suffix (CloudWatch dimension LoadBalancer)."
  value       = aws_lb.this.arn_suffix
}

output "dns_name" {
  description = "Internal DNS name of the ALB."
  value       = aws_lb.this.dns_name
}

output "service_header" {
  description = "Header API Gateway sets to the service a route belongs to; listener rules match on it."
  value       = "X-SpendSense-Service"
}

output "jwks_path_pattern" {
  description = "Path the auth service's listener rule also answers, for token verification inside the VPC."
  value       = "/api/v1/auth/.well-known/*"
}

output "jwks_url" {
  description = "SPENDSENSE_JWKS_URL: the auth service's JWKS through the internal ALB."
  value       = "http://${aws_lb.this.dns_name}/api/v1/auth/.well-known/jwks.json"
}
