"""The visual editor's and the template gallery's pages (the editor's source is in frontend/)."""
