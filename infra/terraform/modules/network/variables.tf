variable "name" {
  description = "Name prefix of every resource (spendsense-{env}[-{owner_id}])."
  type        = string
}

variable "region" {
  description = "AWS region (VPC endpoint service names include it)."
  type        = string
}

variable "availability_zones" {
  description = "Two zone names to use (e.g. [\"us-west-1b\", \"us-west-1c\"]); empty: the first two available."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) == 2
    error_message = "Give two availability zones, or none."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
}

variable "public_subnet_cidrs" {
  description = "Two public subnet CIDRs, one per AZ."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_cidrs) == 2
    error_message = "Exactly two public subnets."
  }
}

variable "private_subnet_cidrs" {
  description = "Two private subnet CIDRs, one per AZ."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_cidrs) == 2
    error_message = "Exactly two private subnets."
  }
}

variable "database_subnet_cidrs" {
  description = "Two database subnet CIDRs, one per AZ."
  type        = list(string)

  validation {
    condition     = length(var.database_subnet_cidrs) == 2
    error_message = "Exactly two database subnets."
  }
}

variable "single_nat_gateway" {
  description = "Share one NAT gateway between the AZs (cheaper, not highly available)."
  type        = bool
}

variable "service_port" {
  description = "Port the API containers listen on (the ALB forwards to it)."
  type        = number
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the VPC flow logs."
  type        = number
}
