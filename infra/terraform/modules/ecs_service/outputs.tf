output "task_definition_arn" {
  description = "ARN (with revision) of the task definition."
  value       = aws_ecs_task_definition.this.arn
}

output "task_definition_family" {
  description = "Family of the task definition (for `aws ecs run-task --task-definition`)."
  value       = aws_ecs_task_definition.this.family
}

output "service_name" {
  description = "ECS service name (CloudWatch dimension ServiceName); null for a one-off task."
  value       = try(aws_ecs_service.this[0].name, null)
}

output "log_group_name" {
  description = "CloudWatch log group of the process."
  value       = aws_cloudwatch_log_group.this.name
}

output "target_group_arn_suffix" {
  description = "Target group ARN suffix (CloudWatch dimension TargetGroup); null for workers."
  value       = try(aws_lb_target_group.this[0].arn_suffix, null)
}

output "task_role_arn" {
  description = "IAM role of the running process."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "IAM role ECS uses to start the process (pull the image, read its secrets)."
  value       = aws_iam_role.execution.arn
}
