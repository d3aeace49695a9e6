"""The Qt shell: widgets render the session's state and forward the user's intent to it."""
