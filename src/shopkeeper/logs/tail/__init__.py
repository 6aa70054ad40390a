"""Live tail: stored lines handed to the sessions tailing them, in this process and (through
Redis) in every other, without reading them back from storage."""
