# The join: one index of the platform images, tagged with the release.
terraform {
  required_providers {
    stevedore = {
      source  = "stevedore/stevedore"
      version = "0.1.0"
    }
  }
}

variable "sources" {
  type = list(string) # each platform job's image_uri
}

variable "release" {
  type = string
}

variable "registry" {
  type    = string
  default = "127.0.0.1:5000"
}

resource "stevedore_image_index" "web" {
  repository = "${var.registry}/web"
  tags       = [var.release, "latest"]
  sources    = var.sources
}

output "image_uri" {
  value = stevedore_image_index.web.image_uri
}
