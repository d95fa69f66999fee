variable "name" {
  description = "Name prefix (spendsense-{env}[-{owner_id}]); the roles are {name}-github-push and {name}-github-deploy."
  type        = string
}

variable "repository" {
  description = "GitHub repository (OWNER/REPO) whose workflows may assume the roles."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.repository))
    error_message = "repository must be OWNER/REPO, without wildcards."
  }
}

variable "environment" {
  description = "GitHub environment whose jobs may deploy here (staging, production): its protection rules are the approval."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+$", var.environment))
    error_message = "environment must be a plain GitHub environment name, without wildcards."
  }
}

variable "create_oidc_provider" {
  description = "Create GitHub's OIDC identity provider (one per AWS account: false for the second deployment in an account)."
  type        = bool
}

variable "account_id" {
  description = "AWS account id."
  type        = string
}

variable "region" {
  description = "AWS region of the cluster."
  type        = string
}

variable "repository_arns" {
  description = "This deployment's ECR repositories (push and describe)."
  type        = list(string)
}

variable "cluster_arn" {
  description = "ARN of this deployment's ECS cluster."
  type        = string
}

variable "cluster_name" {
  description = "Name of this deployment's ECS cluster."
  type        = string
}

variable "service_names" {
  description = "This deployment's ECS services (APIs and workers) the deploy role may update."
  type        = list(string)
}

variable "migrate_task_family" {
  description = "Family of the migrations task definition the deploy role may run."
  type        = string
}

variable "task_role_arns" {
  description = "Task and execution roles of this deployment's task definitions: the only roles the deploy role may pass to ECS."
  type        = list(string)
}
