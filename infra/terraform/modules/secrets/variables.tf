variable "name" {
  description = "Name prefix (spendsense-{env}[-{owner_id}]); secrets are named {name}/{key}."
  type        = string
}

variable "secrets" {
  description = "Secret key => description. Values are put in out of band (see infra/README.md)."
  type        = map(string)

  validation {
    condition     = alltrue([for key in keys(var.secrets) : can(regex("^[a-z0-9-]+$", key))])
    error_message = "Secret keys are lowercase words joined by hyphens."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the secrets."
  type        = string
}
