variable "name" {
  description = "Name prefix (spendsense-{env}[-{owner_id}]) of the distribution's policies and function."
  type        = string
}

variable "bucket" {
  description = <<-EOT
    The web app's bucket (modules/data): name, ARN, regional domain name (the S3 origin) and the policy
    statements every bucket has, to which this module adds its distribution's read access.
  EOT
  type = object({
    id                   = string
    arn                  = string
    regional_domain_name = string
    policy_json          = string
  })
}

variable "logs_bucket_domain_name" {
  description = "Bucket for CloudFront standard logs, as bucket.s3.amazonaws.com (ACLs enabled)."
  type        = string
}

variable "api_endpoint" {
  description = "Base URL of the API Gateway HTTP API (https://...), the origin of /api/*."
  type        = string

  validation {
    condition     = startswith(var.api_endpoint, "https://")
    error_message = "api_endpoint must be an https:// URL."
  }
}

variable "price_class" {
  description = "CloudFront price class (which edge locations serve the app)."
  type        = string
}

variable "aliases" {
  description = "Own domain names of the app; empty: the distribution's *.cloudfront.net name only."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate (us-east-1) for the aliases; empty: CloudFront's own certificate."
  type        = string
}
