variable "name" {
  description = "Short name prefix (AWS caps ALB names at 32 characters)."
  type        = string

  validation {
    condition     = length(var.name) <= 28
    error_message = "name must be at most 28 characters (the ALB is {name}-alb)."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the ALB (on outside dev, where stacks are torn down)."
  type        = bool
  default     = true
}

variable "subnet_ids" {
  description = "Private subnets (two AZs) of the internal ALB."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the ALB."
  type        = string
}

variable "access_logs_bucket" {
  description = "Bucket receiving ALB access logs (under alb/)."
  type        = string
}
