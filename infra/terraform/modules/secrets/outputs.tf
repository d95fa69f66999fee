output "secret_arns" {
  description = "Secret key => ARN."
  value       = { for key, secret in aws_secretsmanager_secret.this : key => secret.arn }
}

output "secret_names" {
  description = "Secret key => name (for `aws secretsmanager put-secret-value --secret-id`)."
  value       = { for key, secret in aws_secretsmanager_secret.this : key => secret.name }
}
