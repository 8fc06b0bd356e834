function "hello-node" {
  description = "Says hello from Node.js"
  runtime     = "nodejs22.x"
  handler     = "index.handler"

  code {
    dir = "."
  }

  url {
    auth = "NONE"
  }

  # Version 1 takes most traffic; version 2 gets a tenth while it proves itself.
  alias "live" {
    version = 1
    routing {
      version = 2
      weight  = 0.1
    }
  }
}
