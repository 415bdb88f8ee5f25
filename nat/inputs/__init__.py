"""What users give: the options table, the components' typed args, the stack config reader and
the checks (pure logic: no Pulumi resources, no AWS calls)."""
