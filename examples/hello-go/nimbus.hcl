# A Go function on the custom runtime. nimbus builds main.go into the
# executable named bootstrap (CGO_ENABLED=0 GOOS=linux go build) before it
# packages or runs the function; a build block would replace that default.
function "hello-go" {
  description = "Says hello from aws-lambda-go"
  runtime     = "provided.al2023"
  handler     = "bootstrap"
  memory_mb   = 128
  timeout     = "5s"

  code {
    dir = "."
  }

  # A public function URL, callable from any browser origin.
  url {
    auth = "NONE"
    cors {
      allow_origins = ["*"]
      allow_methods = ["GET", "POST"]
    }
  }
}
