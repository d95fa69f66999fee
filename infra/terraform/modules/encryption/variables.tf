variable "name" {
  description = "Name prefix (spendsense-{env}[-{owner_id}]); the key's alias is alias/{name}."
  type        = string
}

variable "region" {
  description = "AWS region (the CloudWatch Logs service principal is regional)."
  type        = string
}

variable "account_id" {
  description = "AWS account that owns the key."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be 12 digits."
  }
}
