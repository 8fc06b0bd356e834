def which(event, context):
    return "task root"
