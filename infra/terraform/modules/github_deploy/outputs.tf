output "push_role_arn" {
  description = "Role build.yml assumes to push images (repository variable {STAGING,PRODUCTION}_ECR_PUSH_ROLE_ARN)."
  value       = aws_iam_role.push.arn
}

output "deploy_role_arn" {
  description = "Role deploy.yml assumes to release (the GitHub environment's variable AWS_DEPLOY_ROLE_ARN)."
  value       = aws_iam_role.deploy.arn
}
