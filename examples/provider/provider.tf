terraform {
  required_providers {
    stevedore = {
      source  = "stevedore/stevedore"
      version = "0.1.0"
    }
  }
}

provider "stevedore" {
  # The Docker daemon: unset, it is the one the docker CLI uses (DOCKER_HOST, DOCKER_CONTEXT,
  # the current docker context, the local socket). A remote one, for example:
  #   docker_host      = "tcp://build-box.internal:2376"  # dockerd --tlsverify
  #   docker_cert_path = "~/.docker/build-box"            # ca.pem, cert.pem, key.pem
  # or docker_host = "ssh://deploy@build-box.internal"    # your ssh config and agent apply
  # or docker_context = "build-box"

  # Native builders: each platform a builder lists builds on its daemon (no QEMU), the
  # others on the daemon above; all at once, joined into one index. Dialled only when a
  # build needs one of its platforms.
  builder {
    name        = "graviton"
    platforms   = ["linux/arm64"]
    docker_host = "ssh://ci@arm-builder.internal"
  }

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
