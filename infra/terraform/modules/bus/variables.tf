variable "topics" {
  description = "Producing service => topic name (generated from build_topology)."
  type        = map(string)
}

variable "queues" {
  description = "Consuming service => queue (name, DLQ name, receives before dead-lettering, visibility timeout)."
  type        = map(object({
    name                 = string
    dlq                  = string
    max_receives         = number
    visibility_timeout_s = number
  }))

  validation {
    condition     = alltrue([for q in values(var.queues) : q.dlq != q.name && q.max_receives >= 1])
    error_message = "Every queue needs its own DLQ and max_receives >= 1."
  }
}

variable "subscriptions" {
  description = "Topic name, queue name and SNS filter policy of every subscription (generated)."
  type        = list(object({
    topic         = string
    queue         = string
    filter_policy = map(list(string))
  }))
}

variable "kms_key_arn" {
  description = "KMS key encrypting topics and queues."
  type        = string
}
