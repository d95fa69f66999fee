variable "name_prefix" {
  description = "Name prefix of the deployment (spendsense-{env}[-{owner_id}])."
  type        = string
}

variable "name" {
  description = "Process name: the ECS service, container and log stream name (auth, auth-worker, migrate)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name))
    error_message = "name must be lowercase letters, digits and hyphens."
  }
}

variable "service" {
  description = "SpendSense service the process belongs to (the ALB header value for an API)."
  type        = string
}

variable "region" {
  description = "AWS region (for the awslogs driver)."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster."
  type        = string
}

variable "create_service" {
  description = "Run as a long-lived ECS service; false for a one-off task definition (migrations)."
  type        = bool
  default     = true
}

variable "image" {
  description = "Image reference: ECR repository URL and tag."
  type        = string
}

variable "repository_arn" {
  description = "ARN of the ECR repository the image comes from (the execution role may pull only it)."
  type        = string
}

variable "command" {
  description = "Container command; empty for the image's CMD."
  type        = list(string)
}

variable "port" {
  description = "Port of the process: the API's HTTP port or the worker's metrics port (0: none)."
  type        = number

  validation {
    condition     = var.port >= 0 && var.port <= 65535
    error_message = "port must be 0-65535."
  }
}

variable "health_path" {
  description = "Path the container health check (and, for an API, the target group) requests; empty: none."
  type        = string

  validation {
    condition     = var.health_path == "" || startswith(var.health_path, "/")
    error_message = "health_path must be empty or start with '/'."
  }
}

variable "cpu" {
  description = "Fargate CPU units of the task."
  type        = number
}

variable "memory" {
  description = "Memory of the task in MiB."
  type        = number
}

variable "environment" {
  description = "Plain environment variables (SPENDSENSE_* name => value)."
  type        = map(string)
}

variable "secrets" {
  description = "Environment variables set from Secrets Manager (name => secret ARN)."
  type        = map(string)
}

variable "subnet_ids" {
  description = "Private subnets the tasks run in."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the tasks."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key of the log group and the secrets."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the process's log group."
  type        = number
}

variable "http" {
  description = "For an API: VPC, ALB listener, header to match, rule priority and extra path patterns. Null for workers."
  type        = object({
    vpc_id        = string
    listener_arn  = string
    header_name   = string
    priority      = number
    path_patterns = list(string)
  })
  default = null
}

variable "bus_access" {
  description = <<-EOT
    The process's event-bus permissions: topics it may publish to (its own), the queue it consumes (its
    own, with its DLQ), queues it may only look up (readiness), whether it lists topics (readiness), the
    key of the bus, and the queue whose backlog drives autoscaling (workers).
  EOT
  type = object({
    publish_topic_arns  = list(string)
    consume_queue       = optional(object({ name = string, arn = string, url = string, dlq_name = string, dlq_arn = string }))
    lookup_queue_arns   = list(string)
    list_topics         = bool
    kms_key_arn         = string
    scale_on_queue_name = optional(string)
  })
}

variable "bucket_arns" {
  description = "S3 buckets the process may read and write."
  type        = object({
    read  = list(string)
    write = list(string)
  })
}

variable "autoscaling" {
  description = "Task counts and targets (see the root variable of the same name)."
  type        = object({
    min_tasks           = number
    max_tasks           = number
    cpu_target          = number
    memory_target       = number
    backlog_per_task    = number
    scale_in_cooldown_s = number
  })
}

variable "send_sms" {
  description = "Whether the process sends SMS to phone numbers (SNS Publish with PhoneNumber; no topic)."
  type        = bool
  default     = false
}

variable "push_access" {
  description = <<-EOT
    Mobile push through SNS platform applications (their ARNs; the process may create them): send = find,
    create and update those applications, create their endpoints, read and re-enable the endpoints and
    publish to them (the profile worker); delete_endpoints = delete their endpoints (the profile API, on
    erasure). No other application or endpoint, and no topic, is reachable through these grants.
  EOT
  type = object({
    application_arns = list(string)
    send             = bool
    delete_endpoints = bool
  })
  default = { application_arns = [], send = false, delete_endpoints = false }

  validation {
    condition = alltrue([
      for arn in var.push_access.application_arns : can(regex("^arn:[a-z-]+:sns:[a-z0-9-]+:[0-9]{12}:app/(APNS|APNS_SANDBOX|GCM)/[A-Za-z0-9_.-]+$", arn))
    ])
    error_message = "push_access.application_arns must be SNS platform application ARNs (arn:...:app/PLATFORM/NAME)."
  }
}
