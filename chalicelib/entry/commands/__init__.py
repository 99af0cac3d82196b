"""The operator CLI's commands, one module each: every command returns a frozen result (plain data)
and prints nothing; ``entry.output`` renders any result as text or JSON, ``entry.cli`` chooses."""
