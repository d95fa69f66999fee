output "deployment" {
  description = "Deployment name: SPENDSENSE_ENV of every task, part of every resource name."
  value       = local.deployment
}

output "api_endpoint" {
  description = "Public base URL of the API (API Gateway)."
  value       = module.api.endpoint
}

output "ecr_repositories" {
  description = "Image => ECR repository URL to push to (tag with the git SHA, see infra/README.md)."
  value       = module.registry.repository_urls
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = module.cluster.name
}

output "migrate_task" {
  description = "What `aws ecs run-task` needs to run the migrations (see infra/README.md)."
  value       = {
    task_definition = module.migrate_task.task_definition_family
    subnets         = module.network.private_subnet_ids
    security_group  = module.network.tasks_sg_id
  }
}

output "secrets_to_fill" {
  description = "Secrets Terraform created without a value: put them in before the first deploy."
  value       = module.secrets.secret_names
}

output "dashboards" {
  description = "Service => CloudWatch dashboard name."
  value       = module.observability.dashboard_names
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify."
  value       = module.observability.alarm_topic_arn
}

output "buckets" {
  description = "Bucket kind => name."
  value       = module.data.bucket_names
}

output "topics" {
  description = "Service => SNS topic ARN."
  value       = module.bus.topic_arns
}

output "queues" {
  description = "Service => SQS queue and DLQ."
  value       = module.bus.queues
}

output "web_url" {
  description = "Public URL of the web app (CloudFront; /api/* on it reaches the API)."
  value       = module.web.url
}

output "web_cloudfront_domain" {
  description = "Domain name of the web app's CloudFront distribution (*.cloudfront.net; CNAME target of var.web.aliases)."
  value       = module.web.domain_name
}

output "web_deploy" {
  description = "What infra/deploy_web.sh needs: the bucket to sync web/dist into and the distribution to invalidate."
  value = {
    bucket          = module.data.frontend_bucket.id
    distribution_id = module.web.distribution_id
  }
}

output "github_push_role_arn" {
  description = "Role build.yml assumes to push this deployment's images (null without var.github)."
  value       = try(module.github_deploy[0].push_role_arn, null)
}

output "github_deploy_role_arn" {
  description = "Role deploy.yml assumes in this deployment's GitHub environment (null without var.github)."
  value       = try(module.github_deploy[0].deploy_role_arn, null)
}
