variable "greeting" {
  type    = string
  default = "hello"
}

function "hello-python" {
  description = "Says hello from Python"
  runtime     = "python3.12"
  handler     = "app.handler"
  timeout     = 10

  environment = {
    GREETING = var.greeting
  }

  code {
    dir = "."
  }

  # Events sent with InvocationType=Event retry once, then land on a NATS subject.
  async {
    max_retries   = 1
    max_event_age = "1h"
    on_failure {
      nats = "hello.failed"
    }
  }
}
