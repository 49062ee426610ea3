# Each job of a CI matrix built one platform (a stevedore_image_build with
# platforms = ["linux/arm64"] on an arm64 runner, say) and published its image_uri;
# this joins them into one index under the release tag.
variable "amd64_image_uri" {
  type    = string
  default = "127.0.0.1:5000/web-amd64@sha256:0000000000000000000000000000000000000000000000000000000000000000"
}

variable "arm64_image_uri" {
  type    = string
  default = "127.0.0.1:5000/web-arm64@sha256:1111111111111111111111111111111111111111111111111111111111111111"
}

resource "stevedore_image_index" "web" {
  repository = "127.0.0.1:5000/web"
  tags       = ["v7"]
  sources    = [var.amd64_image_uri, var.arm64_image_uri] # pinned: the digest is known at plan
}

output "image_uri" {
  value = stevedore_image_index.web.image_uri # what a task definition should use
}
