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

variable "frontend_bucket_arn" {
  description = "ARN of the web app's bucket, whose objects CloudFront may have S3 decrypt with this key."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:s3:::[a-z0-9.-]+$", var.frontend_bucket_arn))
    error_message = "frontend_bucket_arn must be an S3 bucket ARN."
  }
}
