variable "name" {
  description = "Name prefix; repositories are {name}/{image}."
  type        = string
}

variable "repositories" {
  description = "Image names: one per service, plus init (migrations)."
  type        = list(string)

  validation {
    condition     = length(var.repositories) == length(distinct(var.repositories))
    error_message = "Repository names must be unique."
  }
}

variable "kms_key_arn" {
  description = "KMS key encrypting the images."
  type        = string
}
