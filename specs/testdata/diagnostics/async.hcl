function "api" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  async {
    max_retries   = 3
    max_event_age = "30s"
    on_success {
      nats    = "done"
      webhook = "https://example.com/hook"
    }
    on_failure {
      nats = "orders.*"
    }
    dead_letter {
      webhook = "ftp://example.com"
    }
  }
}
