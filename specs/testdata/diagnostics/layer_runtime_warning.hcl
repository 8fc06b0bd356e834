layer "pydeps" {
  compatible_runtimes = ["python3.12"]
  code {
    dir = "pydeps"
  }
}

function "api" {
  runtime = "nodejs22.x"
  handler = "index.handler"
  layers  = ["pydeps"]
  code {
    dir = "."
  }
}
