//! Name and value formats shared by every kind (DNS-1123 labels and subdomains, etc.).
