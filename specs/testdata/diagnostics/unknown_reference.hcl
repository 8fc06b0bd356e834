layer "deps" {
  code {
    dir = "deps"
  }
}

function "hello" {
  runtime = "provided.al2023"
  layers  = ["dep"]
  code {
    dir = "."
  }
  async {
    on_success {
      function = "audti"
    }
    on_failure {
      function = "hello"
    }
  }
  event_source "jobs" {
    type   = "nats"
    stream = "JOBS"
    on_failure {
      function = "audit:prod"
    }
  }
}

function "audit" {
  runtime = "provided.al2023"
  code {
    dir = "audit"
  }
}
