// Vite's types for what the pages import besides code (their CSS).
/// <reference types="vite/client" />
