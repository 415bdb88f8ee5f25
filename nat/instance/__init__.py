"""What runs on the NAT instance: the bootstrap script and the agent (Python 3.9 standard
library; it imports nothing of this package). Deploy-time code reads these files and embeds
them in user data; it imports the agent module only for its typed settings."""
