"""Pictures for people: the contact sheet of performers and the identity timeline."""
