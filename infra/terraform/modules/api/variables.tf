variable "name" {
  description = "Name prefix (spendsense-{env}[-{owner_id}])."
  type        = string
}

variable "routes" {
  description = "Route key (\"METHOD /path\") => service: the local gateway's route table, generated from ROUTES."
  type        = map(string)

  validation {
    condition     = alltrue([for key in keys(var.routes) : can(regex("^(ANY|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /", key))])
    error_message = "Route keys are \"METHOD /path\"."
  }
}

variable "services" {
  description = "Services with an API (one integration each); every route's service must be among them."
  type        = list(string)
}

variable "listener_arn" {
  description = "Internal ALB listener the integrations target."
  type        = string
}

variable "service_header" {
  description = "Header set to the route's service; the ALB routes on it."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the VPC link."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the VPC link."
  type        = string
}

variable "cors_allow_origins" {
  description = "Origins allowed for browser calls."
  type        = list(string)
}

variable "throttle" {
  description = "Default route throttling (requests per second, burst)."
  type        = object({ rate_limit = number, burst_limit = number })
}

variable "kms_key_arn" {
  description = "KMS key of the access-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the access logs."
  type        = number
}
