"""spie — case management for the Service Public de l'Insertion et de l'Emploi."""
