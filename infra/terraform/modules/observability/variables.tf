variable "name" {
  description = "Name prefix (spendsense-{env}[-{owner_id}])."
  type        = string
}

variable "region" {
  description = "AWS region the dashboards read metrics from."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the alarm topic."
  type        = string
}

variable "alarm_email" {
  description = "E-mail subscribed to the alarm topic (empty: none)."
  type        = string
}

variable "load_balancer_arn_suffix" {
  description = "ALB ARN suffix (dimension LoadBalancer)."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster name (dimension ClusterName)."
  type        = string
}

variable "services" {
  description = "Per service: its API target group, ECS service names, log groups, topic, queue and DLQ (null if none)."
  type        = map(object({
    target_group_arn_suffix = string
    api_service_name        = string
    worker_service_name     = string
    log_group_names         = list(string)
    topic_name              = optional(string)
    queue_name              = optional(string)
    dlq_name                = optional(string)
  }))
}

variable "processes" {
  description = "Every API and worker: process name => ECS service name (memory alarm for each)."
  type        = map(string)
}

variable "database_instance_id" {
  description = "RDS instance identifier."
  type        = string
}

variable "database_max_connections" {
  description = "max_connections of the database parameter group."
  type        = number

  validation {
    condition     = var.database_max_connections > 0
    error_message = "database_max_connections must be positive."
  }
}

variable "thresholds" {
  description = "Alarm thresholds: 5xx rate (%), p95 latency (ms), memory (%), database connections (% of max)."
  type        = object({
    error_rate_percent     = number
    latency_p95_ms         = number
    memory_percent         = number
    db_connections_percent = number
  })
  default = {
    error_rate_percent     = 5
    latency_p95_ms         = 500
    memory_percent         = 90
    db_connections_percent = 80
  }
}
