public enum ImageReferencePlaceholder {}
