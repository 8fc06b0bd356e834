# Functions in one file may use layers, variables and locals declared in
# another file of the same directory.
function "resize" {
  runtime = "nodejs22.x"
  handler = "index.handler"
  layers  = ["sharp"]
  timeout = 60

  environment = {
    STAGE  = local.stage
    BUCKET = "images-${local.stage}"
  }

  code {
    dir = "resize"
  }

  url {
    cors {
      allow_origins = ["*"]
      allow_methods = ["*"]
    }
  }
}
