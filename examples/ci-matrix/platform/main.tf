# One platform of the matrix, built natively on this job's runner.
terraform {
  required_providers {
    stevedore = {
      source  = "stevedore/stevedore"
      version = "0.1.0"
    }
  }
}

variable "platform" {
  type = string # linux/amd64 or linux/arm64: the runner's own
}

variable "arch" {
  type = string
}

variable "registry" {
  type    = string
  default = "127.0.0.1:5000"
}

resource "stevedore_image_build" "web" {
  context    = "${path.module}/app"
  repository = "${var.registry}/web-${var.arch}"
  tags       = ["ci"]
  platforms  = [var.platform]
}

output "image_uri" {
  value = stevedore_image_build.web.image_uri
}
