terraform {
  required_providers {
    stevedore = {
      source  = "stevedore/stevedore"
      version = "0.1.0"
    }
  }
}

provider "stevedore" {
  # Local registry with basic auth; loopback registries may use plain HTTP.
  registry_auth {
    address  = "127.0.0.1:5000"
    username = "ci"
    password = var.registry_password
  }

  # ECR hosts (*.dkr.ecr.*.amazonaws.com) get tokens from GetAuthorizationToken automatically.
  aws {
    region = "us-east-1"
  }
}

variable "registry_password" {
  type      = string
  sensitive = true
}
