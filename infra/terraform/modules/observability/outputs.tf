output "dashboard_names" {
  description = "Service => CloudWatch dashboard name."
  value       = { for svc, d in aws_cloudwatch_dashboard.service : svc => d.dashboard_name }
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies (subscribe on-call tooling here)."
  value       = aws_sns_topic.alarms.arn
}
