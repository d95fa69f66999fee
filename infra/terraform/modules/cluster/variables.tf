variable "name" {
  description = "Name prefix; the cluster is {name}-cluster."
  type        = string
}
