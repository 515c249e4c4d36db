// Anchor translation unit for the shared precompiled header (cmake/m4_pch.h).
