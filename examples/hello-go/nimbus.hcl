# A Go function on the custom runtime: the code directory holds an
# executable named bootstrap built from main.go.
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
