# Fail at plan time when the image cannot run on Fargate's linux/amd64,
# instead of at deploy time with CannotPullContainerError.
data "stevedore_image_manifest" "web" {
  image    = "127.0.0.1:5000/web:latest"
  platform = "linux/amd64"
}

output "web_image_uri" {
  # repository@sha256:... of the linux/amd64 manifest: pin task definitions to it.
  value = data.stevedore_image_manifest.web.image_uri
}

output "web_platforms" {
  # e.g. ["linux/amd64", "linux/arm64"]; attestation entries are not listed.
  value = data.stevedore_image_manifest.web.platforms
}
