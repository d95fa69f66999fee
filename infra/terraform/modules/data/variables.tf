variable "name" {
  description = "Name prefix (spendsense-{env}[-{owner_id}])."
  type        = string
}

variable "buckets" {
  description = "Bucket kind (data, logs, reports, frontend) => bucket name, from the event-bus declaration."
  type        = map(string)

  validation {
    condition     = alltrue([for kind in ["data", "logs", "reports", "frontend"] : contains(keys(var.buckets), kind)])
    error_message = "The declaration must name the data, logs, reports and frontend buckets."
  }
}

variable "database_subnet_ids" {
  description = "Isolated subnets (two AZs) for RDS and ElastiCache."
  type        = list(string)
}

variable "database_sg_id" {
  description = "Security group of RDS."
  type        = string
}

variable "redis_sg_id" {
  description = "Security group of ElastiCache."
  type        = string
}

variable "database" {
  description = "RDS settings (see the root variable of the same name)."
  type        = object({
    instance_class        = string
    allocated_storage     = number
    max_allocated_storage = number
    multi_az              = bool
    backup_retention_days = number
    max_connections       = number
    deletion_protection   = bool
  })
}

variable "redis" {
  description = "ElastiCache settings (see the root variable of the same name)."
  type        = object({
    node_type       = string
    num_cache_nodes = number
  })
}

variable "kms_key_arn" {
  description = "KMS key for storage, backups, logs and secrets."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the Redis slow log."
  type        = number
}

variable "replication" {
  description = "Cross-region copies (see the root variable of the same name); null: none."
  type = object({
    region               = string
    database_kms_key_arn = string
    data_bucket_arn      = string
    data_kms_key_arn     = string
  })
  default = null
}
