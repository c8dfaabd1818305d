"""The rules language: grammar, AST, checks, compiler and evaluator."""
