output "topic_arns" {
  description = "Producing service => topic ARN."
  value       = { for service, topic in aws_sns_topic.this : service => topic.arn }
}

output "topic_names" {
  description = "Producing service => topic name."
  value       = { for service, topic in aws_sns_topic.this : service => topic.name }
}

output "queues" {
  description = "Consuming service => its queue and DLQ (names, ARNs, URL)."
  value       = {
    for service, queue in aws_sqs_queue.this : service => {
      name     = queue.name
      arn      = queue.arn
      url      = queue.id
      dlq_name = aws_sqs_queue.dlq[service].name
      dlq_arn  = aws_sqs_queue.dlq[service].arn
    }
  }
}
