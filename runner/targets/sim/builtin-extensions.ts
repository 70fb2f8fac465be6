// Imports the model extensions that register themselves with the sim target (see extensions.ts).
// Each module adds mapping builders or step actions for one part of the kernel model.
import './mce-extensions.js';
import './mm-extensions.js';
export {};
