# Container image functions: one pinned by digest with an image_config, one
# by tag (deploy resolves the tag to a digest).
function "resize" {
  memory_mb = 1024
  timeout   = "30s"
  code {
    image = "registry.example:5000/team/resize@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
  }
  image_config {
    entrypoint        = ["/lambda-entrypoint.sh"]
    command           = ["app.handler"]
    working_directory = "/var/task"
  }
}

function "thumbs" {
  code {
    image = "registry.example/team/thumbs:v1.2"
  }
}
