output "api_id" {
  description = "ID of the HTTP API (CloudWatch dimension ApiId)."
  value       = aws_apigatewayv2_api.this.id
}

output "endpoint" {
  description = "Public base URL of the API (https://...)."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "route_keys" {
  description = "Deployed route keys (equal to the local gateway's table)."
  value       = sort(keys(aws_apigatewayv2_route.this))
}
