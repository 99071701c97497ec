export * from './layout.js';
export * from './image.js';
