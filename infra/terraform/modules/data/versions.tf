terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # aws.replica: the region the automated backups are copied to (var.replication).
      configuration_aliases = [aws.replica]
    }
  }
}
