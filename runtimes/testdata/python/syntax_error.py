# A deliberate syntax error.
def handler(event, context:
    return 1
