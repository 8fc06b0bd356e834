function "with_runtime" {
  runtime = "python3.12"
  handler = "app.handler"
  layers  = ["tools"]
  code {
    image = "registry.example/team/fn:v1"
  }
}

function "both" {
  code {
    dir   = "."
    image = "registry.example/team/fn:v1"
  }
}

function "no_tag" {
  code {
    image = "registry.example/team/fn"
  }
}

function "no_registry" {
  code {
    image = "team/fn:v1"
  }
}

function "bad_config" {
  code {
    image    = "localhost:5000/fn@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    checksum = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
  }
  image_config {
    entrypoint        = [""]
    working_directory = "var/task"
  }
}

function "zip_with_image_config" {
  runtime = "provided.al2023"
  code {
    dir = "."
  }
  image_config {
    command = ["x"]
  }
}

function "no_runtime" {
  code {
    dir = "."
  }
}

layer "tools" {
  code {
    image = "registry.example/team/tools:v1"
  }
}

function "with_build" {
  code {
    image = "registry.example/team/fn:v1"
  }
  build {
    command = "make"
  }
}
